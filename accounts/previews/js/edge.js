// The preview edge: routes <script>.<subdomain>.<preview domain> to that
// Worker's own workerd process, and answers for it when it cannot.
//
// ROUTES:   "<script>.<subdomain>" -> {service, key, banner}
// ACCOUNTS: "<subdomain>" -> {state: "suspended" | "expired", since}
// OPTIONS:  {domain, timeout_ms}
// The runtime renders all three; the banner is HTML it escaped already.

// How long a visitor waits for the supervisor to say why nobody answered.
const SUPERVISOR_WAIT_MS = 3000;

const PAGES = {
  unknown: [404, "No Worker is deployed at this address."],
  suspended: [410, "This preview was suspended."],
  expired: [410, "This preview expired and was deleted."],
  starting: [503, "This Worker is starting. Try again in a moment."],
  limited: [503, "This preview is not running right now."],
  crashed: [502, "This Worker crashed. It is being restarted."],
  failed: [502, "This Worker failed to start."],
  stuck: [504, "This Worker took too long to answer. It is being restarted."],
  unavailable: [503, "The preview runtime is busy. Try again in a moment."],
};

function escapeHtml(text) {
  return String(text).replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c],
  );
}

function page(request, kind, detail = "") {
  const [status, text] = PAGES[kind];
  const line = detail ? `${text} ${detail}` : text;
  const headers = { "cache-control": "no-store", "x-claimportal-preview": kind };
  if (status === 503) headers["retry-after"] = "1";
  if (!(request.headers.get("accept") || "").includes("text/html")) {
    headers["content-type"] = "text/plain; charset=utf-8";
    return new Response(`${line}\n`, { status, headers });
  }
  headers["content-type"] = "text/html; charset=utf-8";
  const body =
    `<!doctype html><html lang="en"><head><meta charset="utf-8">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<title>${status} · claimportal preview</title></head>` +
    `<body style="font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem">` +
    `<h1 style="font-size:1.4rem">${escapeHtml(text)}</h1>` +
    (detail ? `<p>${escapeHtml(detail)}</p>` : "") +
    `<p style="color:#666">claimportal preview · HTTP ${status}</p></body></html>`;
  return new Response(body, { status, headers });
}

async function askSupervisor(env, action, key) {
  try {
    const response = await env.SUPERVISOR.fetch(`http://supervisor/${action}/${key}`, {
      method: "POST",
      signal: AbortSignal.timeout(SUPERVISOR_WAIT_MS),
    });
    return await response.json();
  } catch (error) {
    // Busy starting Workers (after a restart, say): try again in a moment.
    return { state: error && error.name === "TimeoutError" ? "starting" : "unavailable" };
  }
}

function withBanner(response, banner) {
  const type = response.headers.get("content-type") || "";
  if (!banner || !type.toLowerCase().includes("text/html")) return response;
  return new HTMLRewriter()
    .on("body", {
      element(body) {
        body.append(banner, { html: true });
      },
    })
    .transform(response);
}

async function forward(request, env, ctx, route) {
  const backend = env[route.service];
  const replayable = request.method === "GET" || request.method === "HEAD";
  for (let attempt = 0; ; attempt++) {
    try {
      const signal = AbortSignal.timeout(env.OPTIONS.timeout_ms);
      const response = await backend.fetch(request, { signal });
      return withBanner(response, route.banner);
    } catch (error) {
      if (error && error.name === "TimeoutError") {
        ctx.waitUntil(askSupervisor(env, "stuck", route.key));
        return page(request, "stuck");
      }
    }
    // No process answered: the runtime knows why, and starts an idle Worker.
    // If it says the Worker runs (again), one retry is safe for a GET.
    const status = await askSupervisor(env, "ensure", route.key);
    if (status.state === "running" && replayable && attempt === 0) continue;
    const kind = status.state in PAGES && status.state !== "running" ? status.state : "crashed";
    return page(request, kind, status.message || "");
  }
}

export default {
  async fetch(request, env, ctx) {
    const host = new URL(request.url).hostname.toLowerCase();
    const suffix = `.${env.OPTIONS.domain}`;
    if (!host.endsWith(suffix)) return page(request, "unknown");
    const name = host.slice(0, -suffix.length);
    const route = env.ROUTES[name];
    if (route) return forward(request, env, ctx, route);
    const account = env.ACCOUNTS[name.slice(name.indexOf(".") + 1)];
    if (account) return page(request, account.state, account.detail);
    return page(request, "unknown");
  },
};
