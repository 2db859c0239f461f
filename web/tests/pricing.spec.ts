import { api, expect, newUser, signIn, STRIPE_URL, test } from "./fixtures";

interface StubRequest {
  method: string;
  path: string;
  params: Record<string, string>;
}

async function checkoutSessionsOf(user: string): Promise<StubRequest[]> {
  const all = (await (await fetch(`${STRIPE_URL}/_stub/requests`)).json()) as StubRequest[];
  return all.filter(
    (r) => r.method === "POST" && r.path === "/v1/checkout/sessions" && r.params.client_reference_id === user,
  );
}

test("the plans are the API's tiers, prices and limits, for a visitor too", async ({ page }) => {
  const tiers = (await (await fetch(`${process.env.API_URL}/api/tiers`)).json()).tiers as any[];
  await page.goto("/pricing");
  for (const tier of tiers) {
    const card = page.getByRole("region", { name: { FREE: "Free", CREATOR: "Creator", PRO: "Pro", STUDIO: "Studio" }[tier.id as string] });
    await expect(card).toContainText(`${tier.generations} generations ${tier.period === "day" ? "per day" : "a month"}`);
    if (tier.price_cents > 0) await expect(card).toContainText(`$${(tier.price_cents / 100).toFixed(2)}`);
    await expect(card).toContainText(tier.storage_bytes === null ? "Storage: Unlimited" : "Storage:");
  }
  await expect(page.getByRole("button", { name: "Sign in to choose a plan" })).toBeVisible();
});

test("a FREE user's upgrade starts one checkout however often it is clicked, and the return shows the new tier", async ({ page }) => {
  const user = newUser("upgrade");
  await signIn(page, user, "/pricing");
  await expect(page.getByRole("region", { name: "Free" }).getByRole("button", { name: "Current plan" })).toBeDisabled();

  // Three clicks in one task, before React renders the button busy or the browser leaves: only
  // the handler's own guard stands between them and three checkouts.
  await page
    .getByRole("button", { name: "Upgrade to Pro" })
    .evaluate((button: HTMLElement) => [1, 2, 3].forEach(() => button.click()));
  await page.waitForURL(`${STRIPE_URL}/**`);
  expect(await checkoutSessionsOf(user)).toHaveLength(1);

  // The stub's hosted page: Pay completes the session, delivers the webhook, returns to the app.
  await page.getByRole("button", { name: "Pay" }).click();
  await page.waitForURL(/\/pricing\?checkout=success/);
  await expect(page.getByRole("status")).toHaveText("Payment received: you are on Pro now.");
  await expect(page.getByRole("region", { name: "Pro" }).getByRole("button", { name: "Current plan" })).toBeDisabled();
  expect((await api(user, "GET", "/api/tiers/limits/me")).json.tier).toBe("PRO");

  // A subscriber changes plans in the billing portal, not in a second checkout.
  await page.getByRole("button", { name: "Switch to Studio" }).click();
  await page.waitForURL(`${STRIPE_URL}/p/session/**`);
  expect(await checkoutSessionsOf(user)).toHaveLength(1);
});
