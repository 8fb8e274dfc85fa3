// Runs a Worker's queue() and scheduled() handlers for the runtime's delivery
// loop. Listens only on the runtime's admin socket, never on a visitor's.
function messageOf(m) {
  const message = { id: m.id, timestamp: new Date(m.timestamp), attempts: m.attempts };
  const bytes = () => Uint8Array.from(atob(m.body), (c) => c.charCodeAt(0));
  if (m.contentType === "v8") message.serializedBody = bytes();
  else if (m.contentType === "bytes") message.body = bytes();
  else if (m.contentType === "json") message.body = JSON.parse(m.body);
  else message.body = m.body;
  return message;
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (!env.USER) return new Response("This Worker has no code.", { status: 404 });
    if (request.method === "POST" && url.pathname === "/queue") {
      const { queue, messages } = await request.json();
      const result = await env.USER.queue(queue, messages.map(messageOf));
      return Response.json(result);
    }
    if (request.method === "POST" && url.pathname === "/scheduled") {
      const result = await env.USER.scheduled({
        cron: url.searchParams.get("cron") || "",
        scheduledTime: new Date(Number(url.searchParams.get("time")) || Date.now()),
      });
      return Response.json(result);
    }
    return new Response("Not found.", { status: 404 });
  },
};
