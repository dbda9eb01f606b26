// data-track-forms: submitting a form marked data-datafast-form="<event name>" sends that event
// (e.g. <form data-datafast-form="signup">). Unmarked forms send nothing.
addEventListener(
  "submit",
  (event) => {
    const name = event.target.getAttribute?.("data-datafast-form");
    if (name) datafast.track(name);
  },
  true,
);
