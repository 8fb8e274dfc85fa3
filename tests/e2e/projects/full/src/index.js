import { DurableObject } from "cloudflare:workers";
import hello from "./hello.txt";

export class Counter extends DurableObject {
  async fetch() {
    const count = ((await this.ctx.storage.get("count")) ?? 0) + 1;
    await this.ctx.storage.put("count", count);
    return Response.json({ count });
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/api/hello") {
      return new Response(`${hello.trim()} ${env.GREETING}`);
    }
    if (url.pathname === "/api/count") {
      const id = env.COUNTER.idFromName("global");
      return env.COUNTER.get(id).fetch(request);
    }
    if (url.pathname === "/api/kv") {
      await env.CACHE.put("last", new Date().toISOString());
      return new Response(await env.CACHE.get("last"));
    }
    if (url.pathname === "/api/db") {
      const { results } = await env.DB.prepare("SELECT 1 AS one").all();
      return Response.json(results);
    }
    if (url.pathname === "/api/enqueue") {
      await env.JOBS.send({ at: Date.now() });
      return new Response("queued");
    }
    return env.ASSETS.fetch(request);
  },
  async queue(batch) {
    for (const message of batch.messages) message.ack();
  },
  async scheduled() {},
};
