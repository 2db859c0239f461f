import { useRef, useState } from "react";
import { call, type CreditPack } from "../api/client";
import { useApi } from "../context";
import { price } from "../format";
import { useBackoff } from "../hooks/useBackoff";
import { useLoad } from "../hooks/useLoad";
import { ProblemMessage } from "./ProblemMessage";

export interface CreditPacksProps {
  /** The page is Stripe's return from a pack's checkout: the session whose credits to wait for. */
  returnedSession?: string | null;
  /** Called once the returned session's credits are stored (the page reads the limits again). */
  onCredited?: () => void;
  /** Where checkout sends the browser back to (default: this page). */
  returnUrl?: string;
  /** Sends the browser to Stripe (default: `window.location.assign`). */
  navigate?: (url: string) => void;
}

/**
 * The packs of credits on sale (`GET /api/credits/packs`): buying one starts one Stripe Checkout
 * however often it is clicked; back from Stripe, the credits are waited for until the webhook has
 * stored them. Nothing is shown when no pack is on sale.
 */
export function CreditPacks({ returnedSession, onCredited, returnUrl, navigate }: CreditPacksProps) {
  const api = useApi();
  const packs = useLoad("credit-packs", () => call(api.GET("/api/credits/packs")).then((answer) => answer.items));
  const [buying, setBuying] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const started = useRef(false);
  const back = returnUrl ?? `${window.location.origin}${window.location.pathname}`;
  const go = navigate ?? ((url: string) => window.location.assign(url));

  const buy = async (pack: CreditPack) => {
    if (started.current) return;
    started.current = true;
    setBuying(true);
    setError(null);
    try {
      const answer = await call(
        api.POST("/api/credits/checkout", {
          body: {
            pack: pack.pack,
            success_url: `${back}?credits=success&session_id={CHECKOUT_SESSION_ID}`,
            cancel_url: back,
          },
        }),
      );
      go(answer.checkout_url);
    } catch (err) {
      started.current = false;
      setBuying(false);
      setError(err);
    }
  };

  const items = packs.data ?? [];
  if (!returnedSession && items.length === 0 && !packs.error) return null;
  return (
    <section className="credit-packs" aria-labelledby="packs-heading">
      <h2 id="packs-heading">Credits</h2>
      {returnedSession && <PackReturn session={returnedSession} onCredited={onCredited} />}
      <ProblemMessage error={packs.error ?? error} onRetry={() => void packs.reload()} />
      {items.length > 0 && (
        <>
          <p>Generations beside your plan, spent once its own are used up, for 12 months.</p>
          <ul className="pack-list">
            {items.map((pack) => (
              <li key={pack.pack}>
                <button type="button" disabled={buying} onClick={() => void buy(pack)}>
                  Buy {pack.generations} generations for {price(pack.price_cents, pack.currency)}
                </button>
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}

/** Back from Stripe: reads the credits, with backoff, until the session's block is stored. */
function PackReturn({ session, onCredited }: { session: string; onCredited?: () => void }) {
  const api = useApi();
  const [added, setAdded] = useState<number | null>(null);
  const gaveUp = useBackoff(added === null, async () => {
    const credits = await call(api.GET("/api/credits")).catch(() => null);
    const block = credits?.blocks.find((b) => b.block_id === session);
    if (!block) return false;
    setAdded(block.generations);
    onCredited?.();
    return true;
  });
  return (
    <p className="banner" role="status">
      {added !== null
        ? `Payment received: ${added} credits added.`
        : gaveUp
          ? "Stripe has not confirmed the payment yet. Reload this page in a minute."
          : "Payment received: waiting for Stripe to confirm your credits…"}
    </p>
  );
}
