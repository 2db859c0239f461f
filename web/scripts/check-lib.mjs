// The package as another React app imports it: its entry loads with only React beside it, exports
// what docs/web.md lists, and a TierCard renders the tier it is given (server-side, no browser).
import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";

const lib = await import("../dist/lib/son1k-web.js");
const expected = [
  "TierCard", "PricingPage", "UsageMeter", "Paywall", "GenerateForm", "useGeneration", "CommunityPool",
  "LyricStudio", "PixelChat", "Son1kProvider", "Session", "makeApi", "call", "ApiError", "ProblemMessage",
  "CreditPacks",
];
const missing = expected.filter((name) => typeof lib[name] !== "function");
if (missing.length) {
  console.error(`check-lib: the package does not export ${missing.join(", ")}`);
  process.exit(1);
}
const tier = {
  id: "CREATOR", price_cents: 999, generations: 50, period: "month", qualities: ["standard", "high"],
  storage_bytes: 10737418240, lyrics_per_day: 50, pixel_messages_per_day: 200, features: [],
};
const html = renderToStaticMarkup(createElement(lib.TierCard, { tier, current: true }));
for (const text of ["Creator", "$9.99", "50 generations a month", "Standard, High", "10 GiB", "Current plan"]) {
  if (!html.includes(text)) {
    console.error(`check-lib: a TierCard rendered without "${text}": ${html}`);
    process.exit(1);
  }
}
console.log(`check-lib: dist/lib exports ${expected.length} parts; a TierCard renders`);
