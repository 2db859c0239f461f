import { CommunityPool } from "../../components/CommunityPool";
import { useLimits } from "../../hooks/useAccount";

export function PoolPage({ onSignIn }: { onSignIn: () => void }) {
  const limits = useLimits();
  return (
    <section>
      <h1>Listen to the community</h1>
      <p>Songs paid members shared. Free members can claim 3 a day to keep.</p>
      <CommunityPool canClaim={limits.data?.tier === "FREE"} onSignIn={onSignIn} />
    </section>
  );
}
