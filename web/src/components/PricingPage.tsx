import { useRef, useState } from "react";
import { call, type Api, type Limits, type Tier } from "../api/client";
import { useApi, useUser } from "../context";
import { TIER_NAMES } from "../format";
import { useLimits, useTiers } from "../hooks/useAccount";
import { useBackoff } from "../hooks/useBackoff";
import { ProblemMessage } from "./ProblemMessage";
import { PlanChangePreview } from "./PlanChangePreview";
import { TierCard } from "./TierCard";

export interface PricingPageProps {
  /** Offered to a signed-out visitor instead of the upgrade buttons. */
  onSignIn?: () => void;
  /** The page is the checkout's return (`?checkout=success`): wait for the new tier to land. */
  checkoutReturn?: boolean;
  /** Where checkout and the portal send the browser back to (default: this page). */
  returnUrl?: string;
  /** Sends the browser to Stripe (default: `window.location.assign`). */
  navigate?: (url: string) => void;
}

/** The four tiers from `GET /api/tiers`; the caller's own marked, an upgrade going to Stripe once. */
export function PricingPage({ onSignIn, checkoutReturn = false, returnUrl, navigate }: PricingPageProps) {
  const api = useApi();
  const user = useUser();
  const tiers = useTiers();
  const limits = useLimits();
  const [choosing, setChoosing] = useState(false);
  const [previewing, setPreviewing] = useState<Tier["id"] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const started = useRef(false);
  const back = returnUrl ?? `${window.location.origin}${window.location.pathname}`;
  const go = navigate ?? ((url: string) => window.location.assign(url));

  const choose = async (tier: Tier) => {
    // However often it is clicked, one checkout (or portal) session is started.
    if (started.current || !limits.data) return;
    started.current = true;
    setChoosing(true);
    setError(null);
    try {
      go(await billingUrl(api, limits.data, tier, back));
    } catch (err) {
      started.current = false;
      setChoosing(false);
      setError(err);
    }
  };

  const current = limits.data?.tier;
  return (
    <div className="pricing">
      <h2>Plans</h2>
      {checkoutReturn && user && <CheckoutReturn limits={limits.data} reload={limits.reload} />}
      <ProblemMessage error={tiers.error ?? limits.error ?? error} onRetry={() => void tiers.reload()} />
      {tiers.loading && !tiers.data && <p aria-live="polite">Loading the plans…</p>}
      <div className="tier-grid">
        {tiers.data?.map((tier) => (
          <TierCard
            key={tier.id}
            tier={tier}
            current={tier.id === current}
            busy={choosing}
            actionLabel={actionLabel(limits.data, tier)}
            onChoose={offered(limits.data, tier) ? choose : undefined}
            onPreview={limits.data ? (t) => setPreviewing(t.id) : undefined}
          />
        ))}
      </div>
      {previewing && previewing !== current && (
        <PlanChangePreview key={previewing} tier={previewing} onClose={() => setPreviewing(null)} />
      )}
      {!user && onSignIn && (
        <p>
          <button type="button" onClick={onSignIn}>
            Sign in to choose a plan
          </button>
        </p>
      )}
    </div>
  );
}

/** Whether the card offers a change: a paid tier to anyone signed in, FREE to a subscriber (the
 * portal cancels). */
function offered(limits: Limits | undefined, tier: Tier): boolean {
  return Boolean(limits && (tier.id !== "FREE" || limits.subscription));
}

function actionLabel(limits: Limits | undefined, tier: Tier): string {
  if (tier.id === "FREE") return "Manage plan";
  return limits?.subscription ? `Switch to ${TIER_NAMES[tier.id]}` : `Upgrade to ${TIER_NAMES[tier.id]}`;
}

/** Stripe's page for this choice: a subscriber's billing portal, anyone else's checkout. */
async function billingUrl(api: Api, limits: Limits, tier: Tier, back: string) {
  if (limits.subscription || tier.id === "FREE") {
    const answer = await call(api.POST("/api/tiers/portal", { body: { return_url: back } }));
    return answer.portal_url;
  }
  const answer = await call(
    api.POST("/api/tiers/checkout", {
      body: { tier: tier.id, success_url: `${back}?checkout=success`, cancel_url: back },
    }),
  );
  return answer.checkout_url;
}

/** After checkout: reads the tier again, with backoff, until the webhook has stored the new one. */
function CheckoutReturn({ limits, reload }: { limits: Limits | undefined; reload: () => Promise<Limits | undefined> }) {
  const landed = Boolean(limits && limits.tier !== "FREE" && limits.subscription);
  const gaveUp = useBackoff(!landed, async () => {
    const now = await reload();
    return Boolean(now && now.tier !== "FREE" && now.subscription);
  });
  return (
    <p className="banner" role="status">
      {landed && limits
        ? `Payment received: you are on ${TIER_NAMES[limits.tier]} now.`
        : gaveUp
          ? "Stripe has not confirmed the payment yet. Reload this page in a minute."
          : "Payment received: waiting for Stripe to confirm your new plan…"}
    </p>
  );
}
