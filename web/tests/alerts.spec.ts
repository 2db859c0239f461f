import { api, expect, newUser, recordGenerations, signIn, test } from "./fixtures";

test("alert settings start at the defaults, are saved from the usage page, and a refusal names its field", async ({ page }) => {
  const user = newUser("alerts");
  await signIn(page, user, "/usage");
  const form = page.getByRole("form", { name: "Alerts" });
  await expect(form.getByLabel("Threshold 1")).toHaveValue("80");
  await expect(form.getByLabel("Threshold 2")).toHaveValue("100");
  await expect(form.getByLabel("Threshold 3")).toHaveValue("");
  await expect(form.getByLabel("By email")).toBeChecked();

  await form.getByLabel("Threshold 1").fill("50");
  await form.getByLabel("Threshold 3").fill("90");
  await form.getByLabel("By email").uncheck();
  await form.getByLabel("Webhook URL (https, optional)").fill("https://hooks.example.com/son1k");
  await form.getByRole("button", { name: "Save alert settings" }).click();
  await expect(form.getByRole("status")).toHaveText("Alert settings saved.");
  // Kept ascending, as the API stores them.
  await expect(form.getByLabel("Threshold 2")).toHaveValue("90");
  expect((await api(user, "GET", "/api/me/alerts/settings")).json).toEqual({
    thresholds: [50, 90, 100],
    channels: { email: false, webhook_url: "https://hooks.example.com/son1k" },
    pace: true,
  });

  await form.getByLabel("Webhook URL (https, optional)").fill("https://localhost/hook");
  await form.getByRole("button", { name: "Save alert settings" }).click();
  await expect(form.getByRole("alert")).toContainText("channels.webhook_url: must name a public host");
  expect((await api(user, "GET", "/api/me/alerts/settings")).json.channels.webhook_url).toBe(
    "https://hooks.example.com/son1k",
  );
});

test("the usage page lists the alerts the generations fired, and how they went out", async ({ page }) => {
  const user = newUser("fired");
  await recordGenerations(user, 3);
  await signIn(page, user, "/usage");
  const list = page.getByRole("region", { name: "Recent alerts" });
  await expect(list.getByRole("listitem")).toHaveCount(1);
  await expect(list.getByRole("listitem")).toContainText("80 % and 100 % reached: 3 of 3 generations.");
  const [alert] = (await api(user, "GET", "/api/me/alerts")).json.items;
  await expect(list.getByRole("listitem")).toContainText(
    alert.deliveries.map((d: { channel: string; status: string }) => `${d.channel} ${d.status}`).join(", "),
  );
});

test("a plan's card shows what changing to it would do, as the API previews it", async ({ page }) => {
  const user = newUser("preview");
  await recordGenerations(user, 1);
  await signIn(page, user, "/pricing");
  await page.getByRole("button", { name: "What changes with Pro?" }).click();
  const panel = page.getByRole("region", { name: "What changes with Pro" });
  const preview = (await api(user, "GET", "/api/tiers/preview?tier=PRO")).json;
  expect(preview.effective).toBe("now");
  await expect(panel).toContainText("At once");
  await expect(panel).toContainText(`Free: 1 of 3 generations used today`);
  await expect(panel).toContainText(`Pro: ${preview.after.used} of 200 generations used this period`);
  await expect(panel).toContainText("Shown by the checkout page");
  await panel.getByRole("button", { name: "Close" }).click();
  await expect(panel).toHaveCount(0);
});
