// Two builds: the app (`vite build`, into dist/app) and the package (`vite build --mode lib`, into
// dist/lib: an ES module with its types, React left to the host app).
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";
import dts from "vite-plugin-dts";

export default defineConfig(({ mode }) =>
  mode === "lib"
    ? {
        plugins: [react(), dts({ entryRoot: "src", include: ["src"], exclude: ["src/app"] })],
        publicDir: false,
        build: {
          outDir: "dist/lib",
          minify: false,
          emptyOutDir: true,
          lib: { entry: "src/lib.ts", formats: ["es"], fileName: "son1k-web", cssFileName: "son1k-web" },
          rollupOptions: { external: ["react", "react-dom", "react/jsx-runtime"] },
        },
      }
    : {
        plugins: [react()],
        build: { outDir: "dist/app", emptyOutDir: true },
        preview: { host: "127.0.0.1" },
      },
);
