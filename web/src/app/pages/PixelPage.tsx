import { useNavigate } from "react-router";
import { PixelChat } from "../../components/PixelChat";

export function PixelPage() {
  const navigate = useNavigate();
  return (
    <section>
      <h1>Talk to Pixel</h1>
      <PixelChat navigate={(path) => void navigate(path)} />
    </section>
  );
}
