import { Link } from "react-router";
import { useUser } from "../../context";

export function HomePage({ onSignIn }: { onSignIn: () => void }) {
  const user = useUser();
  return (
    <section>
      <h1>Make music with Son1kVers3</h1>
      <p>Describe a song and hear it in a minute. Free users make 3 a day; paid plans make more, in higher quality.</p>
      {user ? (
        <ul className="links">
          <li>
            <Link to="/generate">Generate a song</Link>
          </li>
          <li>
            <Link to="/usage">See your usage</Link>
          </li>
          <li>
            <Link to="/pool">Listen to the community pool</Link>
          </li>
          <li>
            <Link to="/lyrics">Write lyrics</Link>
          </li>
          <li>
            <Link to="/pixel">Ask Pixel</Link>
          </li>
          <li>
            <Link to="/pricing">Compare plans</Link>
          </li>
        </ul>
      ) : (
        <p>
          <button type="button" onClick={onSignIn}>
            Sign in to start
          </button>{" "}
          or <Link to="/pricing">compare plans</Link>.
        </p>
      )}
    </section>
  );
}
