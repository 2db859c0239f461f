// How numbers, prices, sizes and times read: in the viewer's locale and time zone.
import type { Quality, Tier, TierId } from "./api/client";

export const TIER_NAMES: Record<TierId, string> = {
  FREE: "Free",
  CREATOR: "Creator",
  PRO: "Pro",
  STUDIO: "Studio",
};

export const QUALITY_NAMES: Record<Quality, string> = {
  standard: "Standard",
  high: "High",
  ultra: "Ultra",
};

export function price(cents: number, currency = "usd"): string {
  if (cents === 0) return "Free";
  return new Intl.NumberFormat("en-US", { style: "currency", currency: currency.toUpperCase() }).format(cents / 100);
}

export function bytes(value: number | null): string {
  if (value === null) return "Unlimited";
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let size = value;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || Number.isInteger(size) ? 0 : 1;
  return `${size.toFixed(digits)} ${units[unit]}`;
}

/** A date and time in the viewer's own time zone. */
export function localTime(iso: string | Date): string {
  const at = typeof iso === "string" ? new Date(iso) : iso;
  return new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" }).format(at);
}

export function perPeriod(tier: Pick<Tier, "period">): string {
  return tier.period === "day" ? "per day" : "this month";
}

/** The tier after `id`, for an upgrade offer (none after STUDIO). */
export function nextTier(tiers: Tier[], id: TierId): Tier | null {
  const at = tiers.findIndex((tier) => tier.id === id);
  return at >= 0 ? (tiers[at + 1] ?? null) : null;
}
