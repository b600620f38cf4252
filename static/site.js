// Progressive enhancement only: every page works without this file.
// Forms that ask for confirmation (data-confirm) ask before sending.
document.addEventListener("submit", function (event) {
  var form = event.target;
  var text = form.getAttribute && form.getAttribute("data-confirm");
  if (text && !window.confirm(text)) {
    event.preventDefault();
  }
});
