import { useEffect, type ReactElement } from "react";
import { NavLink, Route, Routes, useLocation, useNavigate } from "react-router";
import { useSession, useUser } from "../context";
import { GeneratePage } from "./pages/GeneratePage";
import { HomePage } from "./pages/HomePage";
import { LyricsPage } from "./pages/LyricsPage";
import { PixelPage } from "./pages/PixelPage";
import { PoolPage } from "./pages/PoolPage";
import { PricingRoute } from "./pages/PricingRoute";
import { UsagePage } from "./pages/UsagePage";

export function App({ signInError }: { signInError: string | null }) {
  const session = useSession();
  const user = useUser();
  const location = useLocation();
  const signIn = () => void session.signIn(location.pathname + location.search, "login");
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <p className="brand">Son1kVers3</p>
        <nav aria-label="Main">
          <NavLink to="/" end>
            Home
          </NavLink>
          <NavLink to="/pricing">Plans</NavLink>
          <NavLink to="/usage">Usage</NavLink>
          <NavLink to="/generate">Generate</NavLink>
          <NavLink to="/pool">Pool</NavLink>
          <NavLink to="/lyrics">Lyrics</NavLink>
          <NavLink to="/pixel">Pixel</NavLink>
        </nav>
        {user ? (
          <div className="who">
            <span>Signed in as {user.username}</span>
            <button type="button" onClick={() => session.signOut()}>
              Sign out
            </button>
          </div>
        ) : (
          <button type="button" onClick={signIn}>
            Sign in
          </button>
        )}
      </header>
      <main id="main">
        {signInError && (
          <p className="error" role="alert">
            {signInError}
          </p>
        )}
        <Routes>
          <Route path="/" element={<HomePage onSignIn={signIn} />} />
          <Route path="/pricing" element={<PricingRoute onSignIn={signIn} />} />
          <Route path="/usage" element={<Protected onSignIn={signIn} page={<UsagePage />} />} />
          <Route path="/generate" element={<Protected onSignIn={signIn} page={<GeneratePage />} />} />
          <Route path="/pool" element={<PoolPage onSignIn={signIn} />} />
          <Route path="/lyrics" element={<Protected onSignIn={signIn} page={<LyricsPage />} />} />
          <Route path="/pixel" element={<Protected onSignIn={signIn} page={<PixelPage />} />} />
          <Route path="*" element={<NotFound />} />
        </Routes>
      </main>
    </>
  );
}

/** A page for signed-in users; others are offered the sign-in (a tab whose token expired is sent
 * through it at once, and comes back here). */
function Protected({ page, onSignIn }: { page: ReactElement; onSignIn: () => void }) {
  const user = useUser();
  const session = useSession();
  const location = useLocation();
  useEffect(() => {
    if (!user && session.wasSignedIn()) void session.signIn(location.pathname + location.search);
  }, [user, session, location]);
  if (user) return page;
  return (
    <section>
      <h1>Sign in</h1>
      <p>This page shows your own account.</p>
      <button type="button" onClick={onSignIn}>
        Sign in
      </button>
    </section>
  );
}

function NotFound() {
  const navigate = useNavigate();
  return (
    <section>
      <h1>Not found</h1>
      <p>There is no such page.</p>
      <button type="button" onClick={() => void navigate("/")}>
        Go home
      </button>
    </section>
  );
}
