// Verification SOP Class (PS3.4 Annex A): C-ECHO always succeeds once the association is accepted.
import { CommandField, Status } from './dimse-command.ts';
import type { DimseService } from './dimse-service.ts';
import { SopClass } from './dimse-service.ts';

export const verificationService: DimseService = {
  commandField: CommandField.CEchoRq,
  sopClassUid: SopClass.Verification,
  async handle(request, exchange) {
    await exchange.respond({
      CommandField: CommandField.CEchoRsp,
      MessageIDBeingRespondedTo: request.command.MessageID ?? 0,
      AffectedSOPClassUID: SopClass.Verification,
      Status: Status.Success,
    });
  },
};
