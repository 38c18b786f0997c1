/* The flow list page: the "Create task flow" dialog posts to the API and opens the new flow. */
(function () {
  const T = window.Tributary;
  const form = document.getElementById("create-flow-form");
  const dlg = document.getElementById("create-flow");
  form.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    T.clearFormErrors(form);
    const name = form.name.value.trim();
    if (!name) {
      T.showFormErrors(form, { status: 400, body: { name: ["Give the task flow a name."] } });
      return;
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const flow = await T.api.post("/api/v1/flows/", { name: name, business_scenario: form.business_scenario.value.trim() });
      window.location.href = "/flows/" + flow.id + "/";
    } catch (err) {
      T.showFormErrors(form, err);
    } finally {
      button.disabled = false;
    }
  });
  if (new URLSearchParams(window.location.search).get("create")) dlg.showModal();
})();
