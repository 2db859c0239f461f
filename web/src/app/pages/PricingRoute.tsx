import { useSearchParams } from "react-router";
import { PricingPage } from "../../components/PricingPage";

export function PricingRoute({ onSignIn }: { onSignIn: () => void }) {
  const [params] = useSearchParams();
  return (
    <section>
      <h1>Choose your plan</h1>
      <PricingPage
        onSignIn={onSignIn}
        checkoutReturn={params.get("checkout") === "success"}
        returnUrl={`${window.location.origin}/pricing`}
      />
    </section>
  );
}
