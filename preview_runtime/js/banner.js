// The "Unclaimed preview" banner, added inside an unclaimed Worker's own
// process to every HTML page it answers with.
//
// ES-module Workers get it without a hop: the runtime makes their main module
// one that re-exports the Worker's and wraps its default export with
// wrapHandler. Others (assets, service-worker format) are served through this
// module's default export, an entry Worker bound to theirs (TARGET, BANNER).
// The banner is HTML the runtime escaped already.

// Types a browser renders as a page we can mark, and answers it would sniff
// (no type, an invalid one, or one that asks for sniffing).
const PAGE = new Set(["text/html", "application/xhtml+xml"]);
const SNIFFED = new Set(["unknown/unknown", "application/unknown", "*/*"]);
const MIME = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/;
// Documents a browser renders (and runs scripts in) that we cannot mark.
const XML = /^(text\/xml|application\/xml|text\/xsl|[a-z0-9.-]+\/[a-z0-9.-]+\+xml)$/;

function mark(response, banner) {
  let placed = false;
  return new HTMLRewriter()
    .on("body", {
      element(body) {
        body.append(banner, { html: true });
        placed = true;
      },
    })
    .onDocument({
      end(end) {
        if (!placed) end.append(banner, { html: true }); // a page with no <body>
      },
    })
    .transform(response);
}

// Every answer a browser would render as a page carries the banner; any other
// that a browser might still render (sniffed, or an XML document) goes out as
// a download it will not render, with sniffing off.
export function withBanner(response, banner) {
  if (!banner || response.status === 101 || response.body === null) return response;
  const header = (response.headers.get("content-type") || "").toLowerCase();
  const types = header.split(",").map((part) => part.split(";")[0].trim());
  if (types.some((type) => PAGE.has(type))) return mark(response, banner);
  const valid = types.filter((type) => MIME.test(type) && !SNIFFED.has(type));
  if (valid.length && !valid.some((type) => XML.test(type))) return response;
  const safe = new Response(response.body, response);
  if (!valid.length) safe.headers.set("content-type", "application/octet-stream");
  else safe.headers.set("content-disposition", "attachment");
  safe.headers.set("x-content-type-options", "nosniff");
  return safe;
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
