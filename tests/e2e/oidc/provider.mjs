// A real OpenID Connect provider (npm's certified oidc-provider) for the
// sign-in tests: one confidential client, any login accepted by its own
// development login page, and the login used as the person's email address.
// Usage: node provider.mjs <node_modules> <port> <client_id> <client_secret>
//        <redirect_uri>
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [modules, port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
const entry = join(modules, "oidc-provider", "lib", "index.js");
const { default: Provider } = await import(pathToFileURL(entry).href);

const provider = new Provider(`http://localhost:${port}`, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_post",
    },
  ],
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["name"],
  },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: id, email_verified: true, name: id.split("@")[0] };
      },
    };
  },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ["claimportal-tests-only"] },
});

provider.listen(Number(port), "127.0.0.1", () => {
  console.log(`ready ${port}`);
});
