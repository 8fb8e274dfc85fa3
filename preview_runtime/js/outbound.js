// Every Worker's globalOutbound: previews have no outbound network at all.
const MESSAGE = "Outbound network access is disabled in claimportal previews.";

export default {
  fetch() {
    throw new Error(MESSAGE);
  },
  connect() {
    throw new Error(MESSAGE);
  },
};
