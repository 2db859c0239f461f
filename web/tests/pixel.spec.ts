import { accessibilityViolations, expect, newUser, recordGenerations, screenshots, signIn, test, unreachableByKeyboard } from "./fixtures";

test("Pixel answers in a conversation, shows the messages left, and its suggestions lead to their pages", async ({ page }) => {
  const user = newUser("chatter");
  await recordGenerations(user, 1);
  await signIn(page, user, "/pixel");
  await page.getByLabel("Message").fill("give me an idea for a song");
  await page.getByRole("button", { name: "Send" }).click();
  const log = page.getByRole("list", { name: "Conversation" });
  await expect(log).toContainText('Pixel here! You said "give me an idea for a song".');
  await expect(page.getByRole("status")).toContainText("19 of 20 messages left today");

  await page.getByLabel("Message").fill("and another?");
  await page.getByRole("button", { name: "Send" }).click();
  // The same conversation: Pixel remembers the turn before.
  await expect(log).toContainText('Before that: "give me an idea for a song"');
  await expect(page.getByRole("status")).toContainText("18 of 20 messages left today");
  expect(await accessibilityViolations(page)).toEqual([]);
  expect(await unreachableByKeyboard(page)).toEqual([]);
  await screenshots(page, "pixel");

  const chips = page.getByRole("list", { name: "Suggestions" });
  await chips.getByRole("link", { name: /generations? left/ }).click();
  await expect(page).toHaveURL(/\/generate$/);
  await expect(page.getByRole("heading", { name: "Generate a song" })).toBeVisible();
});
