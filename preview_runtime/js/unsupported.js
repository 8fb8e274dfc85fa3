// A binding type previews do not run: the Worker starts, and any call on the
// binding throws an error that names it.
export default function unsupported(env) {
  const reason = env.why ? ` (${env.why})` : "";
  const message = `The ${env.binding} binding of type "${env.type}" is not available in claimportal previews${reason}.`;
  return new Proxy(
    {},
    {
      get(_target, property) {
        if (property === "then" || typeof property === "symbol") return undefined;
        return () => {
          throw new Error(message);
        };
      },
    },
  );
}
