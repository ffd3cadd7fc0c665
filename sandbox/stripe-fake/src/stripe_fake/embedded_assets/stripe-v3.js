/* Stripe.js stand-in (served at /v3/): the part of Stripe.js a page needs for embedded Checkout.
 *
 *   const stripe = Stripe("pk_test_...");
 *   const checkout = await stripe.createEmbeddedCheckoutPage({ fetchClientSecret });  // dahlia and later
 *   // older Stripe.js: await stripe.initEmbeddedCheckout({ fetchClientSecret })
 *   checkout.mount("#checkout");   // or an element; unmount() and mount() again; destroy() when done
 *
 * The form itself is an iframe served by the stand-in (/embedded/checkout). When the session completes it
 * tells this script, which redirects the top window to the session's return_url, as Stripe does with
 * redirect_on_completion=always (with `never` or `if_required` the onComplete callback is called instead).
 * Written for the stand-in; no code of Stripe's.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var ORIGIN = new URL(script ? script.src : "/", location.href).origin;
  var active = null;

  function IntegrationError(message) {
    var error = new Error(message);
    error.name = "IntegrationError";
    return error;
  }

  function EmbeddedCheckout(clientSecret, publishableKey, options) {
    this._secret = clientSecret;
    this._key = publishableKey;
    this._options = options;
    this._frame = null;
    this._destroyed = false;
    this._onMessage = this._handle.bind(this);
    window.addEventListener("message", this._onMessage);
  }

  EmbeddedCheckout.prototype.mount = function (target) {
    if (this._destroyed) throw IntegrationError("This Embedded Checkout instance has been destroyed.");
    if (this._frame) throw IntegrationError("Embedded Checkout is already mounted.");
    var container = typeof target === "string" ? document.querySelector(target) : target;
    if (!container || !container.appendChild) {
      throw IntegrationError("mount(): no element matches " + String(target));
    }
    var frame = document.createElement("iframe");
    frame.name = "embedded-checkout";
    frame.title = "Secure checkout";
    frame.setAttribute("allow", "payment *");
    frame.style.width = "100%";
    frame.style.border = "0";
    frame.style.minHeight = "34rem";
    frame.src = ORIGIN + "/embedded/checkout?key=" + encodeURIComponent(this._key) + "#" + encodeURIComponent(this._secret);
    container.appendChild(frame);
    this._frame = frame;
  };

  EmbeddedCheckout.prototype.unmount = function () {
    if (this._frame) {
      this._frame.remove();
      this._frame = null;
    }
  };

  EmbeddedCheckout.prototype.destroy = function () {
    this.unmount();
    window.removeEventListener("message", this._onMessage);
    this._destroyed = true;
    if (active === this) active = null;
  };

  EmbeddedCheckout.prototype._handle = function (event) {
    if (!this._frame || event.origin !== ORIGIN || event.source !== this._frame.contentWindow) return;
    var data = event.data || {};
    if (data.source !== "stripe-fake-embedded-checkout") return;
    if (data.type === "resize" && typeof data.height === "number") {
      this._frame.style.height = Math.max(200, Math.ceil(data.height)) + "px";
    } else if (data.type === "complete") {
      var redirect = data.redirect_on_completion || "always";
      if (redirect === "always" && data.redirect_url) {
        window.top.location.href = data.redirect_url;
      } else if (typeof this._options.onComplete === "function") {
        this._options.onComplete();
      }
    }
  };

  function create(stripe, options) {
    if (!options || (typeof options.fetchClientSecret !== "function" && typeof options.clientSecret !== "string")) {
      return Promise.reject(IntegrationError("Pass fetchClientSecret: a function returning a Promise of the session's client secret."));
    }
    if (active) {
      return Promise.reject(IntegrationError("You cannot have multiple Embedded Checkout objects at once: destroy() the first."));
    }
    var secret = options.clientSecret ? Promise.resolve(options.clientSecret) : Promise.resolve().then(options.fetchClientSecret);
    return secret.then(function (value) {
      if (typeof value !== "string" || value.indexOf("_secret_") < 0) {
        throw IntegrationError("fetchClientSecret must resolve to a Checkout Session client secret (cs_..._secret_...).");
      }
      if (active) throw IntegrationError("You cannot have multiple Embedded Checkout objects at once: destroy() the first.");
      active = new EmbeddedCheckout(value, stripe._key, options);
      return active;
    });
  }

  function Stripe(publishableKey, options) {
    if (!(this instanceof Stripe)) return new Stripe(publishableKey, options);
    if (typeof publishableKey !== "string" || !/^pk_(test|live)_/.test(publishableKey)) {
      throw IntegrationError("Invalid value for Stripe(): apiKey should be a publishable key (pk_test_... or pk_live_...).");
    }
    this._key = publishableKey;
  }
  Stripe.prototype.createEmbeddedCheckoutPage = function (options) { return create(this, options); };
  Stripe.prototype.initEmbeddedCheckout = function (options) { return create(this, options); };
  Stripe.version = 3;
  window.Stripe = Stripe;
})();
