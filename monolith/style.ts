/** The style's name: the `style` label of its metrics, `X-Kernel-Style`, and its log lines. */
export const STYLE = 'monolith';
