import { api, expect, newUser, signIn, test } from "./fixtures";

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
