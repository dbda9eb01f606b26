import { mount } from "svelte";
import "uplot/dist/uPlot.min.css";
import "./app.css";
import App from "./App.svelte";

// Theme: "light" / "dark" chosen in the header, else the system's preference.
const theme = localStorage.getItem("datafast_theme");
if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;

mount(App, { target: document.getElementById("app") });
