// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {MiniTest, Vm} from "./MiniTest.sol";
import {Owned2Step} from "../../src/Owned2Step.sol";

/// @notice The two-step handover of the owner (admin or regulator), run
///         against each contract by inheriting this and implementing `deploy`.
abstract contract OwnershipTests is MiniTest {
    address internal owner = makeAccount("owner");
    address internal successor = makeAccount("successor");
    address internal stranger = makeAccount("stranger");

    /// @dev Deploys the contract under test with `initialOwner`.
    function deploy(address initialOwner) internal virtual returns (Owned2Step);

    /// @dev The instance created in the test's setUp, owned by `owner`.
    function owned() internal view virtual returns (Owned2Step);

    function test_Ownership_ConstructorSetsOwnerAndEmits() public {
        vm.recordLogs();
        Owned2Step fresh = deploy(successor);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(fresh.owner(), successor, "owner");
        assertEq(fresh.pendingOwner(), address(0), "pendingOwner");
        assertEq(logs.length, 1, "number of logs");
        assertEq(logs[0].emitter, address(fresh), "emitter");
        assertEq(logs[0].topics.length, 3, "number of topics");
        assertEq(logs[0].topics[0], keccak256("OwnershipTransferred(address,address)"), "topic0");
        assertEq(logs[0].topics[1], bytes32(0), "previousOwner");
        assertEq(logs[0].topics[2], bytes32(uint256(uint160(successor))), "newOwner");
        assertEq(logs[0].data.length, 0, "data length");
    }

    function test_Ownership_ConstructorRejectsZeroAddress() public {
        vm.expectRevert(abi.encodeWithSelector(Owned2Step.ZeroAddress.selector));
        deploy(address(0));
    }

    function test_Ownership_TransferOnlyByOwner() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Owned2Step.NotOwner.selector, stranger));
        owned().transferOwnership(stranger);
        assertEq(owned().pendingOwner(), address(0), "pendingOwner");
    }

    function test_Ownership_TransferRejectsZeroAddress() public {
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(Owned2Step.ZeroAddress.selector));
        owned().transferOwnership(address(0));
    }

    function test_Ownership_TransferIsPendingUntilAccepted() public {
        vm.expectEmit(address(owned()));
        emit Owned2Step.OwnershipTransferStarted(owner, successor);
        vm.prank(owner);
        owned().transferOwnership(successor);
        assertEq(owned().owner(), owner, "owner before accept");
        assertEq(owned().pendingOwner(), successor, "pendingOwner");

        vm.expectEmit(address(owned()));
        emit Owned2Step.OwnershipTransferred(owner, successor);
        vm.prank(successor);
        owned().acceptOwnership();
        assertEq(owned().owner(), successor, "owner after accept");
        assertEq(owned().pendingOwner(), address(0), "pendingOwner after accept");
    }

    function test_Ownership_AcceptOnlyByPendingOwner() public {
        vm.prank(owner);
        owned().transferOwnership(successor);

        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Owned2Step.NotPendingOwner.selector, stranger));
        owned().acceptOwnership();

        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(Owned2Step.NotPendingOwner.selector, owner));
        owned().acceptOwnership();
        assertEq(owned().owner(), owner, "owner");
    }

    function test_Ownership_AcceptWithoutPendingTransferReverts() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Owned2Step.NotPendingOwner.selector, stranger));
        owned().acceptOwnership();
    }

    function test_Ownership_PreviousOwnerLosesTheRole() public {
        vm.prank(owner);
        owned().transferOwnership(successor);
        vm.prank(successor);
        owned().acceptOwnership();

        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(Owned2Step.NotOwner.selector, owner));
        owned().transferOwnership(owner);
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(Owned2Step.NotOwner.selector, owner));
        owned().cancelOwnershipTransfer();

        // The new owner can hand the role back.
        vm.prank(successor);
        owned().transferOwnership(owner);
        vm.prank(owner);
        owned().acceptOwnership();
        assertEq(owned().owner(), owner, "owner after handing back");
    }

    function test_Ownership_NewOfferReplacesPendingOne() public {
        vm.prank(owner);
        owned().transferOwnership(stranger);
        vm.prank(owner);
        owned().transferOwnership(successor);

        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Owned2Step.NotPendingOwner.selector, stranger));
        owned().acceptOwnership();
        vm.prank(successor);
        owned().acceptOwnership();
        assertEq(owned().owner(), successor, "owner");
    }

    function test_Ownership_CancelOnlyByOwner() public {
        vm.prank(owner);
        owned().transferOwnership(successor);

        vm.prank(successor);
        vm.expectRevert(abi.encodeWithSelector(Owned2Step.NotOwner.selector, successor));
        owned().cancelOwnershipTransfer();
        assertEq(owned().pendingOwner(), successor, "pendingOwner");
    }

    function test_Ownership_CancelWithdrawsTheOffer() public {
        vm.prank(owner);
        owned().transferOwnership(successor);

        vm.expectEmit(address(owned()));
        emit Owned2Step.OwnershipTransferCancelled(owner, successor);
        vm.prank(owner);
        owned().cancelOwnershipTransfer();
        assertEq(owned().pendingOwner(), address(0), "pendingOwner");

        vm.prank(successor);
        vm.expectRevert(abi.encodeWithSelector(Owned2Step.NotPendingOwner.selector, successor));
        owned().acceptOwnership();
        assertEq(owned().owner(), owner, "owner");
    }
}
