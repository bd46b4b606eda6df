// The explorer's script, for services with API keys only: without keys the server renders the
// whole page and this script does nothing.  With keys it asks for the key once, keeps it in this
// tab's sessionStorage, and fetches the panel (HTML rendered by the server from the same
// templates) with the X-API-Key header.  The key never goes into a URL, a form submission or a log.
(function () {
  "use strict";
  var STORAGE = "similar-users-explorer-api-key";
  var root = document.getElementById("explore");
  if (!root || root.getAttribute("data-needs-key") !== "true") {
    return;
  }
  var source = root.getAttribute("data-source");
  var panel = document.getElementById("panel");
  var keySection = document.getElementById("key-section");
  var keyForm = document.getElementById("key-form");
  var keyInput = document.getElementById("api-key");
  var keyMessage = document.getElementById("key-message");
  var keyStatus = document.getElementById("key-status");
  var forget = document.getElementById("forget-key");

  function storedKey() {
    try {
      return window.sessionStorage.getItem(STORAGE) || "";
    } catch (e) {
      return "";
    }
  }

  function askForKey(message) {
    keyMessage.textContent = message || "";
    keySection.hidden = false;
    keyStatus.hidden = true;
    panel.textContent = "";
    keyInput.focus();
  }

  function showMessage(text) {
    var p = document.createElement("p");
    p.className = "message error";
    p.setAttribute("role", "alert");
    p.textContent = text;
    panel.replaceChildren(p);
  }

  function load() {
    var key = storedKey();
    if (!key) {
      askForKey("");
      return;
    }
    keySection.hidden = true;
    keyStatus.hidden = false;
    if (!source) {
      panel.textContent = "";
      var hint = document.createElement("p");
      hint.className = "hint";
      hint.textContent = "Enter a user handle to compare the models' neighbours of that user.";
      panel.appendChild(hint);
      return;
    }
    panel.setAttribute("aria-busy", "true");
    fetch(source, { headers: { "X-API-Key": key, "Accept": "text/html" }, cache: "no-store", credentials: "omit" })
      .then(function (response) {
        if (response.status === 401) {
          window.sessionStorage.removeItem(STORAGE);
          askForKey("The service refused that key. Enter a valid API key.");
          return null;
        }
        var type = response.headers.get("Content-Type") || "";
        if (type.indexOf("text/html") === 0) {
          // The server's rendering (escaped by its templates), errors included (404, 503).
          return response.text().then(function (html) {
            panel.innerHTML = html;
          });
        }
        return response.json().then(function (body) {
          showMessage(body && body.message ? body.message : "The service answered " + response.status + ".");
        });
      })
      .catch(function () {
        showMessage("The service cannot be reached. Try again in a moment.");
      })
      .finally(function () {
        panel.removeAttribute("aria-busy");
      });
  }

  keyForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var key = keyInput.value.trim();
    keyInput.value = "";
    if (!key) {
      askForKey("Enter the API key.");
      return;
    }
    window.sessionStorage.setItem(STORAGE, key);
    load();
  });
  forget.addEventListener("click", function () {
    window.sessionStorage.removeItem(STORAGE);
    askForKey("");
  });
  load();
})();
