import { useState } from "react";

export default function App() {
  const [count, setCount] = useState(0);
  return (
    <main className="mx-auto mt-16 max-w-md rounded-xl bg-white p-8 text-center shadow">
      <h1 id="title" className="text-2xl font-bold text-slate-800">Hello from a live preview</h1>
      <p className="mt-2 text-slate-500">Edit src/App.jsx: the page updates without losing the count.</p>
      <button
        id="counter"
        className="mt-6 rounded-lg bg-indigo-600 px-4 py-2 font-semibold text-white"
        onClick={() => setCount((c) => c + 1)}
      >
        count is {count}
      </button>
    </main>
  );
}
