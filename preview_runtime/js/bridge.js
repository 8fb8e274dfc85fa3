// Carries one binding's calls (KV, D1, queue) to claimportal's internal
// endpoints. The props (which resource, and this version's credential) come
// from the runtime's config: the Worker's own code can neither read nor forge
// them, and a typed binding only ever speaks its own protocol.
const FORWARDED = [
  "content-type",
  "cf-kv-metadata",
  "x-msg-fmt",
  "x-msg-delay-secs",
  "x-cf-d1-session-commit-token",
  "cf-queue-batch-count",
  "cf-queue-batch-bytes",
  "cf-queue-largest-msg",
];

export default {
  async fetch(request, env, ctx) {
    const { kind, id, token } = ctx.props;
    const url = new URL(request.url);
    const headers = new Headers({
      authorization: `Bearer ${token}`,
      // Raw path and query as the binding sent them (KV keys stay encoded).
      "x-binding-path": url.pathname + url.search,
    });
    for (const name of FORWARDED) {
      const value = request.headers.get(name);
      if (value !== null) headers.set(name, value);
    }
    const target = `http://control/internal/preview/${kind}/${encodeURIComponent(id)}`;
    const bodiless = request.method === "GET" || request.method === "HEAD";
    return env.CONTROL.fetch(target, {
      method: request.method,
      headers,
      body: bodiless ? null : request.body,
    });
  },
};
