export default {
  async fetch(request) {
    return new Response(`Hello from plain-worker at ${new URL(request.url).pathname}`);
  },
};
