import { accessibilityViolations, api, expect, newUser, screenshots, signIn, test, tokenFor, unreachableByKeyboard } from "./fixtures";

test("a draft is written from a brief, edited, saved with If-Match and kept in its history", async ({ page }) => {
  const user = newUser("writer");
  await signIn(page, user, "/lyrics");
  await expect(page.getByText("No drafts yet: write one from a brief.")).toBeVisible();
  await page.getByLabel("Brief").fill("a lighthouse keeper's last night");
  await page.getByLabel("Mood").fill("wistful");
  await page.getByRole("button", { name: "Write lyrics" }).click();
  await expect(page.getByRole("heading", { name: /Editing version 1/ })).toBeVisible();
  const drafts = (await api(user, "GET", "/api/lyrics")).json.items;
  expect(drafts).toHaveLength(1);
  await expect(page).toHaveURL(new RegExp(`draft=${drafts[0].lyrics_id}`));

  const first = page.getByLabel("Lines").first();
  await first.fill("The lamp still turns\nfor ships that never come");
  await page.getByRole("button", { name: "Save" }).click();
  await expect(page.getByRole("status")).toHaveText("Saved as version 2.");
  const stored = (await api(user, "GET", `/api/lyrics/${drafts[0].lyrics_id}`)).json;
  expect(stored.version).toBe(2);
  expect(stored.sections[0].lines).toEqual(["The lamp still turns", "for ships that never come"]);

  await page.getByRole("button", { name: "Version 1" }).click();
  await expect(page.getByRole("heading", { name: /^Version 1:/ })).toBeVisible();
  expect(await accessibilityViolations(page)).toEqual([]);
  expect(await unreachableByKeyboard(page)).toEqual([]);
  await screenshots(page, "lyrics");
});

test("a save over a newer version is a 412: the newer text is shown, to reload or overwrite", async ({ page }) => {
  const user = newUser("racer");
  const created = await api(user, "POST", "/api/lyrics", { theme: "two tabs" });
  expect(created.status).toBe(201);
  const id = created.json.lyrics_id;
  await signIn(page, user, `/lyrics?draft=${id}`);
  await expect(page.getByRole("heading", { name: /Editing version 1/ })).toBeVisible();

  // Another tab saves version 2 meanwhile.
  const other = await fetch(`${process.env.API_URL}/api/lyrics/${id}`, {
    method: "PUT",
    headers: { Authorization: `Bearer ${tokenFor(user)}`, "Content-Type": "application/json", "If-Match": '"1"' },
    body: JSON.stringify({ sections: [{ kind: "verse", lines: ["written in the other tab"] }] }),
  });
  expect(other.status).toBe(200);

  await page.getByLabel("Lines").first().fill("written in this tab");
  await page.getByRole("button", { name: "Save" }).click();
  const conflict = page.getByRole("alert").filter({ hasText: "Version 2 was saved meanwhile" });
  await expect(conflict).toContainText("written in the other tab");
  await conflict.getByRole("button", { name: "Save mine over it" }).click();
  await expect(page.getByRole("status")).toHaveText("Saved as version 3.");
  const stored = (await api(user, "GET", `/api/lyrics/${id}`)).json;
  expect(stored.sections[0].lines).toEqual(["written in this tab"]);
  expect((await api(user, "GET", `/api/lyrics/${id}?version=2`)).json.sections[0].lines).toEqual(["written in the other tab"]);
});

test("after a 412 the newer version can be loaded instead, dropping the edit", async ({ page }) => {
  const user = newUser("yielder");
  const created = await api(user, "POST", "/api/lyrics", { theme: "second thoughts" });
  const id = created.json.lyrics_id;
  await signIn(page, user, `/lyrics?draft=${id}`);
  await expect(page.getByRole("heading", { name: /Editing version 1/ })).toBeVisible();
  const other = await api(user, "GET", `/api/lyrics/${id}`);
  const put = await fetch(`${process.env.API_URL}/api/lyrics/${id}`, {
    method: "PUT",
    headers: { Authorization: `Bearer ${tokenFor(user)}`, "Content-Type": "application/json", "If-Match": `"${other.json.version}"` },
    body: JSON.stringify({ sections: [{ kind: "chorus", lines: ["the other tab's chorus"] }] }),
  });
  expect(put.status).toBe(200);

  await page.getByLabel("Lines").first().fill("this tab's line");
  await page.getByRole("button", { name: "Save" }).click();
  const conflict = page.getByRole("alert").filter({ hasText: "Version 2 was saved meanwhile" });
  await conflict.getByRole("button", { name: "Load version 2 (drop my changes)" }).click();
  await expect(page.getByRole("heading", { name: /Editing version 2/ })).toBeVisible();
  await expect(page.getByLabel("Lines").first()).toHaveValue("the other tab's chorus");
  await expect(page.getByLabel("Kind").first()).toHaveValue("chorus");
  // Nothing of this tab's was saved.
  expect((await api(user, "GET", `/api/lyrics/${id}`)).json.version).toBe(2);
});
