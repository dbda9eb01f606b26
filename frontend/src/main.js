import { mount } from "svelte";
import "uplot/dist/uPlot.min.css";
import "./app.css";
import App from "./App.svelte";

// Theme: "light" / "dark" from the URL (an embed matching its page: ?embed=1&theme=dark), else
// the one chosen in the header, else the system's preference. A browser may refuse storage to a
// page shown in another site's iframe (third-party storage blocked): then there is no choice.
function storedTheme() {
  try {
    return localStorage.getItem("datafast_theme");
  } catch {
    return null;
  }
}
const theme = new URLSearchParams(window.location.search).get("theme") || storedTheme();
if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;

mount(App, { target: document.getElementById("app") });
