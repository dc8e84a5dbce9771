/* kolink.js: keeps the kolink click id (kl_cid) of a shop's landing URL, so that a purchase
   made later in the visit is attributed to the click. No dependencies; served by kolink at
   /kolink.js. Put <script src="https://<your kolink>/kolink.js" async></script> on every page.
   - Reads kl_cid from the landing URL and keeps it in a first-party cookie for 90 days.
   - Shopify: sets it as the kl_cid cart attribute (POST /cart/update.js); Shopify copies cart
     attributes into the order's note_attributes, which kolink reads.
   - WooCommerce: adds it to the checkout form as the hidden field kl_cid (kept as order meta
     by the snippet in kolink's README); WooCommerce 8.5+ also keeps the landing URL itself.
   - window.kolink.clickId is the id in force, for a shop's own code. */
(function () {
  "use strict";
  var KEY = "kl_cid";
  var DAYS = 90;
  var VALID = /^[A-Za-z0-9_-]{1,64}$/;

  function readCookie() {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (parts[i].slice(0, eq) === KEY) {
        var v = decodeURIComponent(parts[i].slice(eq + 1));
        return VALID.test(v) ? v : null;
      }
    }
    return null;
  }

  function writeCookie(v) {
    document.cookie = KEY + "=" + encodeURIComponent(v) + "; Max-Age=" + DAYS * 86400 +
      "; Path=/; SameSite=Lax" + (location.protocol === "https:" ? "; Secure" : "");
  }

  var fromUrl = null;
  try {
    fromUrl = new URLSearchParams(location.search).get(KEY);
  } catch (e) { /* very old browsers: the cookie alone */ }
  if (fromUrl && VALID.test(fromUrl)) {
    writeCookie(fromUrl);
  }
  var cid = fromUrl && VALID.test(fromUrl) ? fromUrl : readCookie();
  if (!cid) return;
  window.kolink = { clickId: cid };

  // Shopify: once per click id and browser session.
  if (window.Shopify && window.fetch) {
    var sent = null;
    try { sent = sessionStorage.getItem("kolink_sent"); } catch (e) {}
    if (sent !== cid) {
      fetch("/cart/update.js", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ attributes: { kl_cid: cid } })
      }).then(function (r) {
        if (r.ok) {
          try { sessionStorage.setItem("kolink_sent", cid); } catch (e) {}
        }
      }, function () {});
    }
  }

  // WooCommerce: a hidden field in the checkout form.
  function addToCheckout() {
    var forms = document.querySelectorAll("form.checkout, form.woocommerce-checkout");
    for (var i = 0; i < forms.length; i++) {
      if (!forms[i].querySelector("input[name=" + KEY + "]")) {
        var input = document.createElement("input");
        input.type = "hidden";
        input.name = KEY;
        input.value = cid;
        forms[i].appendChild(input);
      }
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", addToCheckout);
  } else {
    addToCheckout();
  }
})();
