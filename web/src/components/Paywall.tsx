import type { Tier } from "../api/client";
import { localTime, TIER_NAMES } from "../format";

export interface PaywallProps {
  /** When the allowance comes back (the 429's `reset_at`). */
  resetAt: string;
  /** The tier above the caller's (none on STUDIO). */
  next: Tier | null;
  /** Shows the plans. */
  onUpgrade?: () => void;
}

/** The allowance is spent: when it comes back, and what the next tier gives. */
export function Paywall({ resetAt, next, onUpgrade }: PaywallProps) {
  return (
    <section className="paywall" role="alert" aria-labelledby="paywall-heading">
      <h3 id="paywall-heading">You have used all your generations</h3>
      <p>More are yours on {localTime(resetAt)}.</p>
      {next && (
        <p>
          {TIER_NAMES[next.id]} gives you {next.generations} generations{" "}
          {next.period === "day" ? "a day" : "a month"}.{" "}
          {onUpgrade && (
            <button type="button" onClick={onUpgrade}>
              Upgrade to {TIER_NAMES[next.id]}
            </button>
          )}
        </p>
      )}
    </section>
  );
}
