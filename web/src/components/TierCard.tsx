import type { Tier } from "../api/client";
import { bytes, price, QUALITY_NAMES, TIER_NAMES } from "../format";

export interface TierCardProps {
  tier: Tier;
  /** The signed-in user's tier: its button reads "Current plan" and is disabled. */
  current?: boolean;
  /** The button's label when it is not the current plan. */
  actionLabel?: string;
  /** Called on the button; absent: no button (a signed-out visitor is offered sign-in instead). */
  onChoose?: (tier: Tier) => void;
  /** A choice is on its way: every card's button is disabled. */
  busy?: boolean;
  /** Called on "What changes?"; absent: no such button. */
  onPreview?: (tier: Tier) => void;
}

/** One tier: its price, allowance, qualities and storage, all as the API states them. */
export function TierCard({ tier, current = false, actionLabel, onChoose, busy = false, onPreview }: TierCardProps) {
  const name = TIER_NAMES[tier.id];
  const headingId = `tier-${tier.id.toLowerCase()}`;
  return (
    <section className={`tier-card${current ? " tier-card--current" : ""}`} aria-labelledby={headingId}>
      <h3 id={headingId}>{name}</h3>
      <p className="tier-card__price">
        {price(tier.price_cents)}
        {tier.price_cents > 0 && <span className="tier-card__per"> / month</span>}
      </p>
      <ul className="tier-card__facts">
        <li>
          {tier.generations} generations {tier.period === "day" ? "per day" : "a month"}
        </li>
        <li>Quality: {tier.qualities.map((q) => QUALITY_NAMES[q]).join(", ")}</li>
        <li>Storage: {bytes(tier.storage_bytes ?? null)}</li>
        <li>{tier.lyrics_per_day} lyrics drafts a day</li>
        <li>{tier.pixel_messages_per_day} messages to Pixel a day</li>
      </ul>
      {current ? (
        <button type="button" disabled>
          Current plan
        </button>
      ) : (
        onChoose && (
          <button type="button" onClick={() => onChoose(tier)} disabled={busy}>
            {actionLabel ?? `Choose ${name}`}
          </button>
        )
      )}
      {!current && onPreview && (
        <button type="button" className="tier-card__preview" onClick={() => onPreview(tier)}>
          What changes with {name}?
        </button>
      )}
    </section>
  );
}
