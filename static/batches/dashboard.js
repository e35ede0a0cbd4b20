// Small progressive enhancements. No inline handlers (strict CSP): everything is wired here.
(function () {
  "use strict";
})();
