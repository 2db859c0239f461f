import { useId } from "react";
import { call, type Limits, type TierId } from "../api/client";
import { useApi, useUser } from "../context";
import { localTime, price, TIER_NAMES } from "../format";
import { useLoad } from "../hooks/useLoad";
import { ProblemMessage } from "./ProblemMessage";

export interface PlanChangePreviewProps {
  /** The tier the caller is thinking of. */
  tier: TierId;
  onClose?: () => void;
}

function allowance(limits: Limits): string {
  const per = limits.period === "day" ? "today" : "this period";
  return `${limits.used} of ${limits.limit} generations used ${per}, ${limits.remaining} left until ${localTime(limits.reset_at)}`;
}

/** What changing to `tier` would do (`GET /api/tiers/preview`), before anything is changed. */
export function PlanChangePreview({ tier, onClose }: PlanChangePreviewProps) {
  const api = useApi();
  const user = useUser();
  const headingId = useId();
  const shown = useLoad(user ? `preview:${user.id}:${tier}` : null, () =>
    call(api.GET("/api/tiers/preview", { params: { query: { tier } } })),
  );
  const preview = shown.data;
  return (
    <section className="plan-preview" aria-labelledby={headingId}>
      <h3 id={headingId}>What changes with {TIER_NAMES[tier]}</h3>
      <ProblemMessage error={shown.error} onRetry={() => void shown.reload()} />
      {shown.loading && !preview && <p aria-live="polite">Working out the change…</p>}
      {preview && (
        <dl>
          <dt>Takes effect</dt>
          <dd>{preview.effective === "now" ? "At once" : `At the end of this period (${localTime(preview.current.reset_at)})`}</dd>
          <dt>Now</dt>
          <dd>
            {TIER_NAMES[preview.current.tier]}: {allowance(preview.current)}
          </dd>
          <dt>After</dt>
          <dd>
            {TIER_NAMES[preview.after.tier]}: {allowance(preview.after)}
          </dd>
          <dt>Billing</dt>
          <dd>
            {preview.billing
              ? `${price(preview.billing.amount_due_now_cents)} now, then ${price(preview.billing.next_amount_cents)}${
                  preview.billing.next_billing_at ? ` on ${localTime(preview.billing.next_billing_at)}` : ""
                }`
              : "Shown by the checkout page"}
          </dd>
        </dl>
      )}
      {onClose && (
        <button type="button" onClick={onClose}>
          Close
        </button>
      )}
    </section>
  );
}
