// Receives the runtime's trace of every invocation of the Worker it is
// attached to (workerd's `tails`) and hands it to claimportal, which stores it
// as the Worker's recent events and streams it to `wrangler tail`. The props
// (this version's credential) come from the runtime's config, out of the
// Worker's reach.
const MAX_TEXT = 4096;

function text(value) {
  const s = typeof value === "string" ? value : String(value ?? "");
  return s.length > MAX_TEXT ? s.slice(0, MAX_TEXT) + "…" : s;
}

function plain(value) {
  // Log arguments arrive deserialised; keep what JSON can carry.
  try {
    return JSON.parse(JSON.stringify(value ?? null));
  } catch {
    return text(value);
  }
}

function eventInfo(event) {
  if (!event) return null;
  if ("request" in event) {
    const r = event.request;
    return {
      request: {
        url: text(r.url),
        method: text(r.method),
        headers: plain(r.headers) || {},
        cf: plain(r.cf) || {},
      },
      response: event.response ? { status: event.response.status } : null,
    };
  }
  if ("cron" in event) {
    return { cron: text(event.cron), scheduledTime: Number(event.scheduledTime) };
  }
  if ("queue" in event) {
    return { queue: text(event.queue), batchSize: Number(event.batchSize) };
  }
  if ("scheduledTime" in event) return { scheduledTime: Number(event.scheduledTime) };
  if ("rpcMethod" in event) return { rpcMethod: text(event.rpcMethod) };
  return null;
}

function item(trace) {
  return {
    outcome: text(trace.outcome),
    scriptName: trace.scriptName ?? null,
    entrypoint: trace.entrypoint ?? null,
    eventTimestamp: Number(trace.eventTimestamp ?? Date.now()),
    event: eventInfo(trace.event),
    logs: (trace.logs || []).map((log) => ({
      message: plain(log.message),
      level: text(log.level),
      timestamp: Number(log.timestamp),
    })),
    exceptions: (trace.exceptions || []).map((e) => ({
      name: text(e.name),
      message: text(e.message),
      timestamp: Number(e.timestamp),
      stack: e.stack ? text(e.stack) : undefined,
    })),
    truncated: Boolean(trace.truncated),
  };
}

export default {
  async tail(traces, env, ctx) {
    await env.CONTROL.fetch("http://control/internal/preview/events", {
      method: "POST",
      headers: {
        authorization: `Bearer ${ctx.props.token}`,
        "content-type": "application/json",
      },
      body: JSON.stringify(traces.map(item)),
    });
  },
};
