// data-track-downloads: a click on a link to a file sends a "file_download" event with the file's
// URL. Which files: their extension is in data-download-extensions ("pdf,zip"), else in DEFAULT.
const DEFAULT = "pdf,zip,gz,tgz,rar,7z,dmg,pkg,exe,msi,apk,deb,rpm,iso,doc,docx,xls,xlsx,ppt,pptx,odt,ods,csv,txt,rtf,epub,mp3,wav,mp4,mov,avi,webm";

const script = document.querySelector("script[data-track-downloads]");
const extensions = (script?.getAttribute("data-download-extensions") || DEFAULT).toLowerCase().split(/[\s,.]+/);

const click = (event) => {
  const link = event.target.closest?.("a[href]");
  const extension = link && /\.(\w+)$/.exec(link.pathname)?.[1].toLowerCase();
  // A left click, or a middle click (auxclick): both open the file.
  if (event.button < 2 && extensions.includes(extension)) {
    datafast.track("file_download", { url: link.href.slice(0, 255) });
  }
};
addEventListener("click", click, true);
addEventListener("auxclick", click, true);
