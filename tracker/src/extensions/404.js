// data-track-404: a page that says it is a "not found" page, with <meta name="datafast-404"> in it,
// sends a "404" event with its path. (A single-page app's own 404 view can call
// datafast.track("404", {path: location.pathname}) itself.)
if (document.querySelector('meta[name="datafast-404"]')) datafast.track("404", { path: location.pathname });
