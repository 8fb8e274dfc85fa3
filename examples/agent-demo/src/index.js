// The agent-demo Worker: an API over KV, D1, a Durable Object and a queue,
// in front of a static site.
import { DurableObject } from "cloudflare:workers";

// One counter per name, kept in the object's own SQLite database.
export class Counter extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ctx.storage.sql.exec(
      "CREATE TABLE IF NOT EXISTS hits (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL)",
    );
  }

  async fetch() {
    this.ctx.storage.sql.exec(
      "INSERT INTO hits (id, n) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET n = n + 1",
    );
    const { n } = this.ctx.storage.sql.exec("SELECT n FROM hits WHERE id = 1").one();
    return Response.json({ count: n });
  }
}

async function api(request, env, path) {
  switch (path) {
    case "/api/hello":
      return Response.json({ greeting: env.GREETING });
    case "/api/notes": {
      const { results } = await env.DB.prepare(
        "SELECT id, body FROM notes ORDER BY id",
      ).all();
      return Response.json(results);
    }
    case "/api/visits": {
      const visits = Number((await env.CACHE.get("visits")) ?? 0) + 1;
      await env.CACHE.put("visits", String(visits));
      return Response.json({ visits });
    }
    case "/api/counter":
      return env.COUNTER.get(env.COUNTER.idFromName("demo")).fetch(request);
    case "/api/jobs":
      if (request.method !== "POST") {
        return Response.json({ error: "POST to queue a job" }, { status: 405 });
      }
      await env.JOBS.send({ queuedAt: new Date().toISOString() });
      return Response.json({ queued: true }, { status: 202 });
    case "/api/last-job":
      return Response.json(JSON.parse((await env.CACHE.get("last-job")) ?? "null"));
  }
  return null;
}

export default {
  async fetch(request, env) {
    const path = new URL(request.url).pathname;
    return (await api(request, env, path)) ?? env.ASSETS.fetch(request);
  },

  // The queue's consumer: remember the last job in KV.
  async queue(batch, env) {
    for (const message of batch.messages) {
      await env.CACHE.put(
        "last-job",
        JSON.stringify({ ...message.body, handledAt: new Date().toISOString() }),
      );
      message.ack();
    }
  },
};
