// Svelte's compiler options, read by the Vite plugin, svelte-check and the linter.
export default {
  compilerOptions: {
    // Runes everywhere: the panel is Svelte 5 code only.
    runes: true,
  },
};
