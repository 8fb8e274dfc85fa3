// For service-worker scripts (which cannot use our internal module): a binding
// type previews do not run answers every call with an error saying so.
export default {
  fetch() {
    return new Response(
      "This binding is not available in claimportal previews.",
      { status: 501 },
    );
  },
};
