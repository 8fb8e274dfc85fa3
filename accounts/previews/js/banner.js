// The "Unclaimed preview" banner, added inside an unclaimed Worker's own
// process to every HTML page it answers with.
//
// ES-module Workers get it without a hop: the runtime makes their main module
// one that re-exports the Worker's and wraps its default export with
// wrapHandler. Others (assets, service-worker format) are served through this
// module's default export, an entry Worker bound to theirs (TARGET, BANNER).
// The banner is HTML the runtime escaped already.

export function withBanner(response, banner) {
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

function shown(answer, banner) {
  return answer instanceof Promise
    ? answer.then((response) => withBanner(response, banner))
    : withBanner(answer, banner);
}

// The Worker's default export with fetch() answering through withBanner and
// everything else (queue, scheduled, RPC methods, `this`) as it was.
export function wrapHandler(handler, banner) {
  if (handler === undefined) return {}; // no default export: nothing to answer with
  if (typeof handler === "function") {
    if (typeof handler.prototype?.fetch !== "function") return handler;
    return class extends handler {
      fetch(...args) {
        return shown(super.fetch(...args), banner);
      }
    };
  }
  if (handler === null || typeof handler !== "object") return handler;
  if (typeof handler.fetch !== "function") return handler;
  return new Proxy(handler, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver);
      if (name !== "fetch") return value;
      return function (...args) {
        return shown(Reflect.apply(value, this, args), banner);
      };
    },
  });
}

export default {
  async fetch(request, env) {
    return withBanner(await env.TARGET.fetch(request), env.BANNER);
  },
};
