// Microphone → 16-bit PCM blocks for the facewire studio: the AudioContext runs at 16 kHz, so this
// only converts float samples and cuts them into blocks (20 ms) posted to the page.
class FacewirePcm extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.block = (options.processorOptions && options.processorOptions.block) || 320;
    this.buffer = new Int16Array(this.block);
    this.fill = 0;
  }
  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel) {
      for (let i = 0; i < channel.length; i++) {
        const s = Math.max(-1, Math.min(1, channel[i]));
        this.buffer[this.fill++] = s < 0 ? s * 32768 : s * 32767;
        if (this.fill === this.block) {
          this.port.postMessage(this.buffer, [this.buffer.buffer]);
          this.buffer = new Int16Array(this.block);
          this.fill = 0;
        }
      }
    }
    return true;
  }
}
registerProcessor('facewire-pcm', FacewirePcm);
