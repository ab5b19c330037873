import { defineConfig } from "vitest/config";

// The rooms server (portal-server) serves the built files and speaks /ws and /yjs.
// `npm run dev` proxies both to a server on 127.0.0.1:8080.
export default defineConfig({
  // The code editor's Monaco loads lazily as one chunk rather than dozens of shared pieces.
  build: { outDir: "dist", emptyOutDir: true, sourcemap: true, target: "es2022", rolldownOptions: { output: { codeSplitting: { includeDependenciesRecursively: false, groups: [{ name: "monaco", test: /[\\/]node_modules[\\/](monaco-editor|y-monaco)[\\/]/ }] } } } },
  server: {
    proxy: {
      "/ws": { target: "ws://127.0.0.1:8080", ws: true },
      "/yjs": { target: "ws://127.0.0.1:8080", ws: true },
    },
  },
  test: { include: ["src/**/*.test.ts"] },
});
