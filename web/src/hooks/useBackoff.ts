import { useEffect, useRef, useState } from "react";

/** The longest a return from Stripe waits for its webhook before saying so. */
const GIVE_UP_AFTER_MS = 120_000;

/**
 * While `active`, calls `attempt` with backoff (0.5 s, growing by half to at most 5 s) until it
 * answers `true` or two minutes have passed; returns whether it gave up. What Stripe's return pages
 * wait with: the webhook that stores the payment may land after the browser is back.
 */
export function useBackoff(active: boolean, attempt: () => Promise<boolean>): boolean {
  const [gaveUp, setGaveUp] = useState(false);
  const latest = useRef(attempt);
  latest.current = attempt;
  useEffect(() => {
    if (!active) return;
    let delay = 500;
    let waited = 0;
    let timer: ReturnType<typeof setTimeout>;
    let stopped = false;
    const poll = async () => {
      const done = await latest.current();
      if (stopped || done) return;
      waited += delay;
      if (waited > GIVE_UP_AFTER_MS) return setGaveUp(true);
      delay = Math.min(delay * 1.5, 5000);
      timer = setTimeout(poll, delay);
    };
    timer = setTimeout(poll, delay);
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [active]);
  return gaveUp;
}
