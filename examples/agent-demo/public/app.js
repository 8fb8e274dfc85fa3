const get = async (path, init) => (await fetch(path, init)).json();
const show = (id, value) => { document.getElementById(id).textContent = value; };

async function refresh() {
  const [hello, notes, visits, counter, lastJob] = await Promise.all([
    get("/api/hello"), get("/api/notes"), get("/api/visits"),
    get("/api/counter"), get("/api/last-job"),
  ]);
  show("greeting", hello.greeting);
  const list = document.getElementById("notes");
  list.replaceChildren(...notes.map((note) => {
    const item = document.createElement("li");
    item.textContent = note.body;
    return item;
  }));
  show("visits", visits.visits);
  show("counter", counter.count);
  show("last-job", lastJob ? lastJob.handledAt : "none yet");
}

document.getElementById("queue-job").addEventListener("click", async () => {
  await get("/api/jobs", { method: "POST" });
  setTimeout(refresh, 3000);
});
refresh();
