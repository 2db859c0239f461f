import { useSearchParams } from "react-router";
import { LyricStudio } from "../../components/LyricStudio";

export function LyricsPage() {
  const [params, setParams] = useSearchParams();
  return (
    <section>
      <h1>Lyric Studio</h1>
      <LyricStudio initialDraft={params.get("draft")} onOpen={(id) => setParams({ draft: id }, { replace: true })} />
    </section>
  );
}
