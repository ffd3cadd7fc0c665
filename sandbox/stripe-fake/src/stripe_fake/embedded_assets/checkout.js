/* The stand-in's embedded Checkout form (inside the iframe). It talks only to the stand-in, with the
 * session's client secret as the credential, and tells the parent page's Stripe.js when it is done. */
(function () {
  "use strict";
  var secret = decodeURIComponent(location.hash.slice(1));
  var session = null;
  var byId = function (id) { return document.getElementById(id); };

  function tell(message) {
    message.source = "stripe-fake-embedded-checkout";
    window.parent.postMessage(message, "*");
  }

  function resize() { tell({ type: "resize", height: document.documentElement.scrollHeight }); }

  function money(amount, currency) {
    return new Intl.NumberFormat(undefined, { style: "currency", currency: currency.toUpperCase() }).format(amount / 100);
  }

  /** "per month", "every 3 months": how Stripe's Checkout words a price's recurring interval. */
  function every(recurring) {
    var count = recurring.interval_count || 1;
    return count === 1 ? "per " + recurring.interval : "every " + count + " " + recurring.interval + "s";
  }

  function priced(amount, recurring) {
    return money(amount, session.currency) + (recurring ? " " + every(recurring) : "");
  }

  /** What the subscription costs from now on: the recurring items' sum, at their (one, shared) interval. */
  function recurringTotal() {
    var recurring = null;
    var amount = 0;
    session.line_items.forEach(function (item) {
      if (!item.recurring) return;
      recurring = recurring || item.recurring;
      amount += item.amount;
    });
    return recurring ? priced(amount, recurring) : null;
  }

  function recurringAmount() {
    return session.line_items.reduce(function (sum, item) { return sum + (item.recurring ? item.amount : 0); }, 0);
  }

  function trialText() {
    if (session.trial_period_days) return session.trial_period_days + " days free";
    if (session.trial_end) {
      return "Free until " + new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric" })
        .format(new Date(session.trial_end * 1000));
    }
    return null;
  }

  function showError(text) {
    var box = byId("error");
    box.textContent = text;
    box.hidden = !text;
    resize();
  }

  function post(path, body) {
    return fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })
      .then(function (response) { return response.json().then(function (json) { return { status: response.status, body: json }; }); });
  }

  function load() {
    post("/embedded/session", { client_secret: secret }).then(function (answer) {
      if (answer.status !== 200) { showError((answer.body.error || {}).message || "This checkout cannot be loaded."); byId("items").textContent = ""; return; }
      session = answer.body;
      var items = byId("items");
      items.textContent = "";
      session.line_items.forEach(function (item) {
        var li = document.createElement("li");
        var name = document.createElement("span");
        name.textContent = item.description + (item.quantity > 1 ? " × " + item.quantity : "");
        var amount = document.createElement("span");
        amount.textContent = priced(item.amount, item.recurring);
        li.append(name, amount);
        items.append(li);
      });
      var today = money(session.amount_total, session.currency);
      var recurring = session.mode === "subscription" ? recurringTotal() : null;
      var trial = recurring ? trialText() : null;
      // As Stripe's Checkout: a subscription leads with what it costs per interval ("€15.00 per month") or
      // with its trial, and says "then €15.00 per month" when what is due today differs from that.
      byId("headline").textContent = trial || recurring || today;
      var then = byId("then");
      then.textContent = recurring && (trial || session.amount_total !== recurringAmount()) ? "then " + recurring : "";
      then.hidden = !then.textContent;
      byId("total-label").textContent = recurring ? "Total due today" : "Total";
      byId("total").textContent = today;
      byId("email").value = session.customer_email || "";
      byId("submit").textContent = recurring ? (trial ? "Start trial" : "Subscribe · " + recurring) : "Pay " + today;
      if (session.mode === "subscription") {
        Array.prototype.forEach.call(document.querySelectorAll("[data-delayed]"), function (node) { node.remove(); });
      }
      if (session.status !== "open") {
        showError("This Checkout Session is " + session.status + ".");
        return;
      }
      byId("pay").hidden = false;
      resize();
    });
  }

  function confirm(extra) {
    var method = document.querySelector("input[name=method]:checked").value;
    var body = { client_secret: secret, method: method, email: byId("email").value || null };
    for (var key in extra) body[key] = extra[key];
    byId("submit").disabled = true;
    showError("");
    return post("/embedded/confirm", body).then(function (answer) {
      byId("submit").disabled = false;
      if (answer.status === 200 && answer.body.next_action === "three_d_secure") {
        byId("pay").hidden = true;
        byId("challenge").hidden = false;
        byId("authenticate").focus();
        resize();
        return;
      }
      byId("challenge").hidden = true;
      if (answer.status !== 200) {
        byId("pay").hidden = false;
        showError((answer.body.error || {}).message || "The payment failed.");
        return;
      }
      byId("pay").hidden = true;
      byId("done").hidden = false;
      resize();
      tell({ type: "complete", redirect_url: answer.body.redirect_url, redirect_on_completion: answer.body.redirect_on_completion });
    }, function () {
      byId("submit").disabled = false;
      showError("The connection failed. Try again.");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    byId("pay").addEventListener("submit", function (event) { event.preventDefault(); confirm({}); });
    byId("authenticate").addEventListener("click", function () { confirm({ authenticated: true }); });
    byId("fail-authentication").addEventListener("click", function () { confirm({ authenticated: false }); });
    window.addEventListener("resize", resize);
    load();
  });
})();
