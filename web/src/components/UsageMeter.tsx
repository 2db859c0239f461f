import type { Limits } from "../api/client";
import { bytes, localTime, perPeriod } from "../format";

export interface UsageMeterProps {
  limits: Limits;
  /** The time the pace is computed at (default: now). */
  now?: Date;
}

/** The share of a period past which the pace is shown. */
const PACE_AFTER = 0.2;
/** The share of the allowance at which the meter warns. */
const WARN_AT = 0.8;

/**
 * Generations used of the period's allowance, when it resets (local time), the credits beside it,
 * storage, and the pace.
 */
export function UsageMeter({ limits, now = new Date() }: UsageMeterProps) {
  const share = limits.limit > 0 ? limits.used / limits.limit : 1;
  const per = perPeriod(limits);
  const pace = projectedExhaustion(limits, now);
  return (
    <section className="usage" aria-labelledby="usage-heading">
      <h2 id="usage-heading">Usage</h2>
      <p id="usage-label">
        {limits.used} of {limits.limit} generations used {per}
      </p>
      <div
        className={`meter${share >= WARN_AT ? " meter--warn" : ""}`}
        role="progressbar"
        aria-labelledby="usage-label"
        aria-valuemin={0}
        aria-valuemax={limits.limit}
        aria-valuenow={limits.used}
      >
        <div className="meter__fill" style={{ width: `${Math.min(100, share * 100)}%` }} />
      </div>
      <p>
        {limits.remaining_in_period} left · resets {localTime(limits.reset_at)}
      </p>
      {limits.credits > 0 && (
        <p className="credits">
          {limits.credits} {limits.credits === 1 ? "credit" : "credits"} beside your plan, spent once its generations
          are used up
        </p>
      )}
      {share >= 1 ? (
        <p className="warning" role="status">
          You have used every generation {per === "per day" ? "for today" : "for this month"}
          {limits.credits > 0 ? "; your credits pay for the next ones." : "."}
        </p>
      ) : (
        share >= WARN_AT && (
          <p className="warning" role="status">
            You have used {Math.round(share * 100)} % of your generations {per}.
          </p>
        )
      )}
      {pace && (
        <p className="pace">At this rate you run out on {localTime(pace)}.</p>
      )}
      <StorageLine used={limits.storage.used_bytes} limit={limits.storage.limit_bytes ?? null} />
    </section>
  );
}

function StorageLine({ used, limit }: { used: number; limit: number | null }) {
  return (
    <p className="storage">
      Storage: {bytes(used)} of {limit === null ? "Unlimited" : bytes(limit)}
    </p>
  );
}

/**
 * When the allowance runs out if use goes on at its pace so far: only once more than a fifth of
 * the period has passed, and only when that is before the reset (an estimate, linear).
 */
export function projectedExhaustion(limits: Limits, now: Date): Date | null {
  const start = Date.parse(limits.period_start);
  const reset = Date.parse(limits.reset_at);
  const elapsed = now.getTime() - start;
  if (!(reset > start) || elapsed / (reset - start) <= PACE_AFTER || limits.used === 0) return null;
  if (limits.used >= limits.limit) return null;
  const at = start + (limits.limit / limits.used) * elapsed;
  return at < reset ? new Date(at) : null;
}
