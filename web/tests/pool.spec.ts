import { accessibilityViolations, api, expect, listedItems, newUser, screenshots, signIn, test, unreachableByKeyboard, API_URL } from "./fixtures";

async function listed(genre: string): Promise<any[]> {
  const items: any[] = [];
  let cursor: string | null = null;
  do {
    const query: URLSearchParams = new URLSearchParams({ genre, limit: "50", ...(cursor ? { cursor } : {}) });
    const page: any = await (await fetch(`${API_URL}/api/community/pool?${query}`)).json();
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

test("the pool filters by genre and reads on as it scrolls, to the last page", async ({ page }) => {
  const genre = newUser("scroll");
  await listedItems(genre, 13);
  await page.goto("/pool");
  await page.getByLabel("Genre").fill(genre);
  await page.getByRole("button", { name: "Filter" }).click();
  const items = page.getByRole("listitem").filter({ hasText: `${genre} #` });
  await expect(items).toHaveCount(12);
  // The twelfth, at the bottom, scrolled to: the next page is read without a click.
  await items.last().scrollIntoViewIfNeeded();
  await expect(items).toHaveCount(13);
  await expect(page.getByText(`That is everything for ${genre}.`)).toBeVisible();
  // Newest first: the last one made leads.
  await expect(items.first().getByRole("heading")).toHaveText(`${genre} #13`);
  await expect(page.getByRole("button", { name: `Sign in to play ${genre} #13` })).toBeVisible();
  expect(await accessibilityViolations(page)).toEqual([]);
});

test("a FREE user plays, likes, unlikes and claims, with claims left; the API holds each", async ({ page }) => {
  const genre = newUser("acts");
  await listedItems(genre, 3);
  const user = newUser("listener");
  await signIn(page, user, "/pool");
  await page.getByLabel("Genre").fill(genre);
  await page.getByRole("button", { name: "Filter" }).click();
  const second = page.getByRole("listitem").filter({ hasText: `${genre} #2` });

  await second.getByRole("button", { name: "Play" }).click();
  await expect(second.getByLabel(`${genre} #2`, { exact: true })).toHaveAttribute("src", /audio\//);
  await expect(second).toContainText("1 play");

  await second.getByRole("button", { name: "Like" }).click();
  await expect(second.getByRole("button", { name: `Like ${genre} #2` })).toHaveAttribute("aria-pressed", "true");
  await expect(second).toContainText("1 like");
  expect((await listed(genre)).find((i) => i.title === `${genre} #2`).likes).toBe(1);
  await second.getByRole("button", { name: `Like ${genre} #2` }).click();
  await expect(second).toContainText("0 likes");
  expect((await listed(genre)).find((i) => i.title === `${genre} #2`).likes).toBe(0);

  await second.getByRole("button", { name: `Claim ${genre} #2` }).click();
  await expect(page.getByRole("status")).toHaveText("2 claims left today");
  await expect(second.getByRole("button", { name: `Claim ${genre} #2` })).toBeDisabled();
  const again = await api(user, "POST", "/api/community/pool/claim", {
    contribution_id: (await listed(genre)).find((i) => i.title === `${genre} #2`).id,
  });
  expect(again.json.code).toBe("already_claimed");

  // Most played first: the item just played (and claimed) leads.
  await page.getByLabel("Sort by").selectOption("popular");
  await expect(page.getByRole("listitem").filter({ hasText: `${genre} #` }).first().getByRole("heading")).toHaveText(`${genre} #2`);
  expect(await accessibilityViolations(page)).toEqual([]);
  expect(await unreachableByKeyboard(page)).toEqual([]);
  await screenshots(page, "pool");
});

test("a paid user is not offered claims", async ({ page }) => {
  const genre = newUser("paid");
  await listedItems(genre, 1);
  const user = newUser("paid_listener");
  await api(user, "GET", "/api/tiers/limits/me");
  await api("admin_for_tests", "PUT", `/api/admin/users/${user}/tier`, { tier: "PRO" }, true);
  await signIn(page, user, "/pool");
  await page.getByLabel("Genre").fill(genre);
  await page.getByRole("button", { name: "Filter" }).click();
  const item = page.getByRole("listitem").filter({ hasText: `${genre} #1` });
  await expect(item.getByRole("button", { name: "Play" })).toBeVisible();
  await expect(item.getByRole("button", { name: /Claim/ })).toHaveCount(0);
});
