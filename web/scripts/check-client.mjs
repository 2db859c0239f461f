// Fails when openapi.yaml changed and src/api/schema.ts was not regenerated (`npm run generate`).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const dir = mkdtempSync(join(tmpdir(), "son1k-client-"));
try {
  const fresh = join(dir, "schema.ts");
  execFileSync("npx", ["openapi-typescript", "../openapi.yaml", "--output", fresh], { stdio: "ignore" });
  if (readFileSync(fresh, "utf8") !== readFileSync("src/api/schema.ts", "utf8")) {
    console.error("web/src/api/schema.ts is not what openapi.yaml generates: run `npm run generate` in web/ and commit it.");
    process.exit(1);
  }
  console.log("check-client: src/api/schema.ts matches openapi.yaml");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
